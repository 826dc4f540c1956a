// Tokenizers: under construction
