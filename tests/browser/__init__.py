"""Browser tests of the web pages (see conftest.py)."""
