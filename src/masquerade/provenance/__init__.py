"""Provenance for what masquerade writes: an invisible watermark in the pixels (:mod:`.watermark`)."""
