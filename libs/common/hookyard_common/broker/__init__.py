"""The RabbitMQ contract: the connection, the topology, consuming with acks,
who may publish what, and what is parked."""
