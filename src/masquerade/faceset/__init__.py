"""Facesets: folders of aligned faces with an index. :mod:`.format` describes the folder and reads it
(:func:`~.format.load_faceset`); :mod:`.extract` makes one (``masquerade extract``)."""
