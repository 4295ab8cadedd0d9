"""trialbayes."""
