"""Engines explain one batch of decoded inputs on the device, one engine per modality."""
