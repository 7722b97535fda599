"""FakeLens stage 2: datasets, the MobileNet V1 detector, named configs and `python -m train`."""
