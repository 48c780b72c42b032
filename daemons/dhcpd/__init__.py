"""nefeli-dhcpd: DHCPv4, DHCPv6, RA and NA for VM interfaces (nfdhcpd\x27s role)."""
