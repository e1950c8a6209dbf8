"""The cell's plant integration: order store, MQTT, OPC UA, the simulated WMS and fault injection."""
