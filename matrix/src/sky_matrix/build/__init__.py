"""Build products, each cached by the content it is made from under one lock (`build.cache`):
the host wheel, the manylinux wheel, test venvs and container wheelhouses."""
