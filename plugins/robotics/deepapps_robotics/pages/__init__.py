"""Streamlit pages of the robotics plugin (streamlit is imported inside ``render`` only)."""
