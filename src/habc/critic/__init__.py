"""Critics: the dual-head critic (viability + efficiency) and the distributional value for recap."""
