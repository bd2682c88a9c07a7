"""watcherd: a daemon that turns a shared folder of images into hash-named, folder-tagged thumbnails."""

__version__ = "0.1.0"
