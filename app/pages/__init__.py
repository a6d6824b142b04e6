"""The dashboard's pages, one module each; :func:`app.server.create_app` imports them."""
