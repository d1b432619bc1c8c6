"""reconciler: declarative infrastructure-as-code for VALDI, Valohai and Code Ocean."""

__version__ = "0.1.0"
