"""Human and oracle saliency: clicks, maps, annotations."""
