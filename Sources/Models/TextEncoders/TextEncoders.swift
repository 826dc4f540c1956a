// TextEncoders: under construction
