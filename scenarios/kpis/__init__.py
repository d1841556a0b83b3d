"""Key performance indicators: one module computes them (batch, replay and live), one
formats them.
"""
