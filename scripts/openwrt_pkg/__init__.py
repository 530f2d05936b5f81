"""The OpenWrt package writers."""
