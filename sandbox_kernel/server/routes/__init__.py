"""The routes of the embedded server, one module per group; `create_app` (app.py) mounts them."""
