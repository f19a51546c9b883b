"""XPCS physics and data: the heterodyne model, layouts, selection, the NLSQ warm start."""
