"""Adapters that connect the Recorder to training frameworks."""
