"""Who a sender is: names learnt from its own stream (names.py)."""
