"""Quality evaluations run from the command line (``ragline eval ...``)."""
