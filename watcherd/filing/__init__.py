"""The applier's file side: the context every step works with, filing originals after their
records commit, the journal of thumbnail steps a committed decision still owes, adopting
thumbnails found without a record (their chunks read ahead in workers while a scan adopts
many), recording files that cannot be ingested, and the sidecars and extended attributes that
carry tags out of the catalog.
"""

__all__ = ["adopt", "context", "failures", "journal", "originals", "readahead", "tagfiles"]
