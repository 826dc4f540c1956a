// ImageIO: under construction
