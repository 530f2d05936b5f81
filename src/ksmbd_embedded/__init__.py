"""ksmbd-embedded: an SMB2/3 file server for small devices."""

__version__ = "0.1.0"
