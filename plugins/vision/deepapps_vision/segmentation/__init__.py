"""Promptable segmentation with SAM (segment-anything): clicks, boxes, everything, detect then segment.

Registered as the ``segmentation`` task by :mod:`.specs`; the heavy modules (torch,
segment-anything) are imported only when the task runs.
"""
