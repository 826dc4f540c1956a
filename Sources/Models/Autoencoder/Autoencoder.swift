// Autoencoder: under construction
