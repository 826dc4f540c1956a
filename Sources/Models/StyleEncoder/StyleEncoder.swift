// StyleEncoder: under construction
