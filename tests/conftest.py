import os

os.environ.setdefault("CI", "true")  # no progress bars in tests
