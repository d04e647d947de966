"""Command-line programs of the project (``python -m datera_glance.cmd.X``)."""
