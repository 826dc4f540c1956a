// ModelHub: under construction
