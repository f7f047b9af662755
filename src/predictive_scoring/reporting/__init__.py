"""What a person reads: the plots and the self-contained HTML comparison report."""
