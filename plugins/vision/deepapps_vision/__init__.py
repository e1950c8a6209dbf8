"""deepapps_vision: face recognition, object detection and segmentation.

Its hooks live in :mod:`deepapps_vision.plugin`, which gathers the registrations of
each sub-domain (``detection``, ``faces``, ...). Importing this package is light.
"""
