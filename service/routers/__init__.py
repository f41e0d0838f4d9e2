"""HTTP routes: parse the request, call the predictor, answer. No model logic here."""
