"""Operator tools: registering the App from its manifest (setup) and the demo.

May import every stage but web and cli; nothing imports it but cli."""
