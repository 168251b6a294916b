"""Provenance for what masquerade writes: an invisible watermark in the pixels and a signed C2PA manifest.

:mod:`.watermark` marks and reads the pixels. The C2PA content credentials are :mod:`.manifest` (what a
manifest records, the shared errors), :mod:`.credentials` (the certificate and key to sign with),
:mod:`.signing` (embedded manifests and ``.c2pa`` sidecars) and :mod:`.verification`; :mod:`.c2pa`
gathers their public names. :mod:`.stamp` puts both on one output.
"""
