"""The README's examples as tests (``test_readme.py``) and ``make readme`` (``__main__.py``)."""
