"""sdxl: Stable Diffusion XL image generation (text-to-image, img2img, optional refiner)."""
