"""The studio's routes, one module per page group; each handler reads through `studio.queries` and renders."""
