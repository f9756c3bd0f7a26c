"""What every command shares: reading volumes safely (``volume_io``) and checkpoints with a message that names them
(``checkpoint_file``), writing folders safely (``staging``) and only where the command owns the path
(``ownership``), how a command ends (``command``), and starting and stopping its child processes (``processes``)."""
