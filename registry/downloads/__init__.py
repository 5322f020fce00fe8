"""Zero-copy blob downloads: signed links and the listener that serves them."""

from registry.downloads.links import DownloadLinks, LinkRefused
from registry.downloads.listener import DownloadListener

__all__ = ["DownloadLinks", "DownloadListener", "LinkRefused"]
