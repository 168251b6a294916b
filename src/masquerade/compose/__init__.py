"""Compositing: a swapper's patch into the target image — masks (:mod:`.masks`), colour correction
(:mod:`.colour`) and blending (:mod:`.blending`)."""
