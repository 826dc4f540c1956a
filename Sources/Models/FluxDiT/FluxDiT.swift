// FluxDiT: under construction
