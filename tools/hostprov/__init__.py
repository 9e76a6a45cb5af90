"""Host provisioner (CPython only, never copied to a board).

protocol.py   the provisioning protocol, provisioner side (Mesh Protocol v1.1 §5.4), sans-I/O, on pyca/cryptography
pb_adv.py     PB-ADV bearer and Generic Provisioning layer, provisioner side (§5.2.1, §5.3)
pb_gatt.py    PB-GATT Proxy PDU SAR, client side (§5.2.2, §6.3.2)

Written from the specification, independently of lib/mesh (the device side): each is the other's oracle.
"""
