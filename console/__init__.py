"""Every face a person touches: the Flask web console and the `qinling` command line."""
