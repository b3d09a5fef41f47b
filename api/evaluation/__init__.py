"""Rate-distortion evaluation: metrics, BD-rate, anchors, reports."""
