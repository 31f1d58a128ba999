"""Who a sender is: its name and labels (directory.py), from its own stream
(names.py), the operator's inventory (inventory.py) and reverse DNS (rdns.py);
labels.py cleans the untrusted ones."""
