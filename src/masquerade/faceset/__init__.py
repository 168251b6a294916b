"""Facesets: ``masquerade extract`` — folders of aligned faces with an index, and their reader."""
