"""The review page (``watcherd serve``): a Starlette app over ``Library``."""
