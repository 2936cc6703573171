"""The file path: decode, split long audio at pauses, transcribe the pieces, stitch, render."""
