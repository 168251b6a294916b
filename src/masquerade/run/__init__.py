"""Running many swaps: a folder of photos and videos (:mod:`.batch`), locally or on Ray workers
(:mod:`.ray_backend`, which also swaps one long video in segments)."""
