"""What every command shares: reading volumes safely (``volume_io``) and writing folders safely (``staging``)."""
